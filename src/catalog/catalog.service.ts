import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import type { RequestOrigin } from '../common/auth.decorators';
import { hasRole, type Principal } from '../common/principal';
import { ProblemException } from '../common/problem';
import { ServiceDto, toServiceDto } from './dto/service.dto';
import type { ServiceManifest } from './manifest';
import { ServiceState } from './service-state.entity';

/** The manifests loaded at boot (see CatalogModule). */
export const SERVICE_MANIFESTS = Symbol('SERVICE_MANIFESTS');

/**
 * The compute services: manifests from SERVICES_DIR (fixed for the life of the process) plus
 * the enabled flag admins keep in the database. Other modules (jobs) use `requireUsable`.
 */
@Injectable()
export class CatalogService {
  private readonly byKey: ReadonlyMap<string, ServiceManifest>;

  constructor(
    @Inject(SERVICE_MANIFESTS) private readonly manifests: readonly ServiceManifest[],
    private readonly em: EntityManager,
    private readonly audit: AuditService,
  ) {
    this.byKey = new Map(manifests.map((m) => [m.key, m]));
  }

  all(): ServiceManifest[] {
    return [...this.manifests];
  }

  manifest(key: string): ServiceManifest | undefined {
    return this.byKey.get(key);
  }

  /** No required entitlement: any signed-in user; else the entitlement; admins always. */
  isEntitled(manifest: ServiceManifest, principal: Principal): boolean {
    return (
      !manifest.requiredEntitlement ||
      hasRole(principal, 'admin') ||
      principal.entitlements.includes(manifest.requiredEntitlement)
    );
  }

  /**
   * The manifest of a service the caller may submit to now. Unknown and not entitled answer
   * the same 404, so that a service's existence does not leak; disabled is a 409. Pass the
   * EntityManager of your transaction or job fork when outside a request.
   */
  async requireUsable(
    key: string,
    principal: Principal,
    em: EntityManager = this.em,
  ): Promise<ServiceManifest> {
    const manifest = this.visible(key, principal);
    if (!(await em.getRepository(ServiceState).isEnabled(key))) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        `Service "${key}" is disabled by an administrator`,
        { type: 'urn:labgate:problem:service-disabled' },
      );
    }
    return manifest;
  }

  /** Services the caller is entitled to, disabled ones included (with `enabled: false`). */
  async list(principal: Principal): Promise<ServiceDto[]> {
    const disabled = await this.states().disabledKeys();
    return this.manifests
      .filter((m) => this.isEntitled(m, principal))
      .map((m) => toServiceDto(m, !disabled.has(m.key)));
  }

  async get(key: string, principal: Principal): Promise<ServiceDto> {
    const manifest = this.visible(key, principal);
    return toServiceDto(manifest, await this.states().isEnabled(key));
  }

  async setEnabled(
    key: string,
    enabled: boolean,
    actor: Principal,
    origin: RequestOrigin,
  ): Promise<ServiceDto> {
    const manifest = this.visible(key, actor);
    await this.em.transactional(async (em) => {
      const repository = em.getRepository(ServiceState);
      const before = await repository.isEnabled(key);
      await repository.setEnabled(key, enabled, actor.userId);
      this.audit.record(
        {
          actor,
          action: enabled ? 'service.enable' : 'service.disable',
          targetType: 'service',
          targetId: key,
          origin,
          details: { before, after: enabled },
        },
        em,
      );
    });
    return toServiceDto(manifest, enabled);
  }

  private visible(key: string, principal: Principal): ServiceManifest {
    const manifest = this.byKey.get(key);
    if (!manifest || !this.isEntitled(manifest, principal)) {
      throw new ProblemException(HttpStatus.NOT_FOUND, `There is no service "${key}"`);
    }
    return manifest;
  }

  private states() {
    return this.em.getRepository(ServiceState);
  }
}
