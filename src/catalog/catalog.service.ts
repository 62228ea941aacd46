import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import type { ActionOn } from '../audit/audited-actions';
import type { RequestOrigin } from '../common/auth.decorators';
import { hasRole, type UserPrincipal as Principal } from '../common/principal';
import { quoteInput } from '../common/caller-input';
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
    return (await this.usable(key, principal, em)).manifest;
  }

  /** requireUsable, with the priority of the service's new jobs from the same read. */
  async usable(
    key: string,
    principal: Principal,
    em: EntityManager = this.em,
  ): Promise<{ manifest: ServiceManifest; priority: number }> {
    const manifest = this.visible(key, principal);
    const state = await em.getRepository(ServiceState).current(key);
    if (!state.enabled) {
      throw new ProblemException(
        HttpStatus.CONFLICT,
        `Service "${key}" is disabled by an administrator`,
        { type: 'urn:labgate:problem:service-disabled' },
      );
    }
    return { manifest, priority: state.priority ?? manifest.priority };
  }

  /** Services the caller is entitled to, disabled ones included (with `enabled: false`). */
  async list(principal: Principal): Promise<ServiceDto[]> {
    const states = new Map((await this.states().findAll()).map((s) => [s.key, s]));
    return this.manifests
      .filter((m) => this.isEntitled(m, principal))
      .map((m) => {
        const state = states.get(m.key);
        return toServiceDto(m, state?.enabled ?? true, state?.priority);
      });
  }

  async get(key: string, principal: Principal): Promise<ServiceDto> {
    const manifest = this.visible(key, principal);
    const state = await this.states().current(key);
    return toServiceDto(manifest, state.enabled, state.priority);
  }

  /** The priority of a service's new jobs: an admin's override, else the manifest's. */
  async priorityOf(manifest: ServiceManifest, em: EntityManager = this.em): Promise<number> {
    const state = await em.getRepository(ServiceState).current(manifest.key);
    return state.priority ?? manifest.priority;
  }

  /** Enables or disables a service, or sets its jobs' priority; each change audited. */
  async update(
    key: string,
    change: { enabled?: boolean; priority?: number | null },
    actor: Principal,
    origin: RequestOrigin,
  ): Promise<ServiceDto> {
    const manifest = this.visible(key, actor);
    const after = await this.em.transactional(async (em) => {
      const repository = em.getRepository(ServiceState);
      // Copied: the upsert below updates the managed entity in place.
      const { enabled, priority } = await repository.current(key);
      const before = { enabled, priority };
      const next = {
        enabled: change.enabled ?? before.enabled,
        priority: change.priority === undefined ? before.priority : change.priority,
      };
      await repository.set(key, next, actor.userId);
      const record = (action: ActionOn<'service'>, details: Record<string, unknown>) =>
        this.audit.record(
          { actor, action, targetType: 'service', targetId: key, origin, details },
          em,
        );
      if (change.enabled !== undefined) {
        record(change.enabled ? 'service.enable' : 'service.disable', {
          before: before.enabled,
          after: change.enabled,
        });
      }
      if (change.priority !== undefined) {
        record('service.priority', { before: before.priority ?? null, after: change.priority });
      }
      return next;
    });
    return toServiceDto(manifest, after.enabled, after.priority);
  }

  private visible(key: string, principal: Principal): ServiceManifest {
    const manifest = this.byKey.get(key);
    if (!manifest || !this.isEntitled(manifest, principal)) {
      throw new ProblemException(HttpStatus.NOT_FOUND, `There is no service ${quoteInput(key)}`);
    }
    return manifest;
  }

  private states() {
    return this.em.getRepository(ServiceState);
  }
}
