import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import type { ActionOn } from '../audit/audited-actions';
import type { RequestOrigin } from '../common/auth.decorators';
import { hasRole, type UserPrincipal as Principal } from '../common/principal';
import { quoteInput } from '../common/caller-input';
import { ProblemException } from '../common/problem';
import { ChangeChannel, ChangeFeed, changedHere, NotifiedCache } from '../database/change-feed';
import { ServiceDto, toServiceDto } from './dto/service.dto';
import type { ServiceManifest } from './manifest';
import { ServiceState } from './service-state.entity';

/** The manifests loaded at boot (see CatalogModule). */
export const SERVICE_MANIFESTS = Symbol('SERVICE_MANIFESTS');

/** What admins set on a service (`service_state`; no row: enabled, the manifest's priority). */
interface ServiceSettings {
  enabled: boolean;
  priority?: number | null;
}

/** Kept settings are read again after this long, whatever the feed says. */
const SETTINGS_MAX_AGE_MS = 60_000;
const SETTINGS_KEPT = 1_000;

/**
 * The compute services: manifests from SERVICES_DIR (fixed for the life of the process) plus
 * the enabled flag admins keep in the database. Other modules (jobs) use `requireUsable`.
 */
@Injectable()
export class CatalogService {
  private readonly byKey: ReadonlyMap<string, ServiceManifest>;
  /**
   * Each service's settings, which every submission checks, kept in memory on the ChangeFeed's
   * word: `service_state`'s trigger notifies every change (Migration20261208020000), and this
   * process drops them at once when it makes one (`update`).
   */
  private readonly settings: NotifiedCache<ServiceSettings>;

  constructor(
    @Inject(SERVICE_MANIFESTS) private readonly manifests: readonly ServiceManifest[],
    private readonly em: EntityManager,
    private readonly audit: AuditService,
    feed: ChangeFeed,
  ) {
    this.byKey = new Map(manifests.map((m) => [m.key, m]));
    this.settings = new NotifiedCache<ServiceSettings>(feed, SETTINGS_KEPT, SETTINGS_MAX_AGE_MS);
    feed.on(ChangeChannel.ServiceState, () => this.settings.clear());
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
   * the same 404, so that a service's existence does not leak; disabled is a 409.
   */
  async requireUsable(key: string, principal: Principal): Promise<ServiceManifest> {
    return (await this.usable(key, principal)).manifest;
  }

  /** requireUsable, with the priority of the service's new jobs from the same read. */
  async usable(
    key: string,
    principal: Principal,
  ): Promise<{ manifest: ServiceManifest; priority: number }> {
    const manifest = this.visible(key, principal);
    const state = await this.settingsOf(key);
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
  async priorityOf(manifest: ServiceManifest): Promise<number> {
    const state = await this.settingsOf(manifest.key);
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
    // Committed: this process's next submission sees it now, the others once notified.
    changedHere(ChangeChannel.ServiceState, key);
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

  private async settingsOf(key: string): Promise<ServiceSettings> {
    const settings = await this.settings.read(key, async () => {
      // Its own fork: the value outlives the request (and there may be none).
      const { enabled, priority } = await this.em.fork().getRepository(ServiceState).current(key);
      return { enabled, priority };
    });
    return settings!; // the load always answers
  }
}
