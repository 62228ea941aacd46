import { EntityRepository } from '@mikro-orm/postgresql';
import { ServiceState } from './service-state.entity';

export class ServiceStateRepository extends EntityRepository<ServiceState> {
  /** Keys of the services an admin disabled (every other service is enabled). */
  async disabledKeys(): Promise<Set<string>> {
    const rows = await this.find({ enabled: false });
    return new Set(rows.map((row) => row.key));
  }

  async current(key: string): Promise<{ enabled: boolean; priority?: number | null }> {
    return (await this.findOne({ key })) ?? { enabled: true };
  }

  /** Sets the state in one statement, so that two admins at once cannot collide on insert. */
  async set(
    key: string,
    state: { enabled: boolean; priority?: number | null },
    updatedBy?: string,
  ): Promise<ServiceState> {
    return this.getEntityManager().upsert(ServiceState, {
      key,
      enabled: state.enabled,
      priority: state.priority ?? null,
      updatedAt: new Date(),
      updatedBy,
    });
  }
}
