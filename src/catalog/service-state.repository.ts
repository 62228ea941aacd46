import { EntityRepository } from '@mikro-orm/postgresql';
import { ServiceState } from './service-state.entity';

export class ServiceStateRepository extends EntityRepository<ServiceState> {
  /** Keys of the services an admin disabled (every other service is enabled). */
  async disabledKeys(): Promise<Set<string>> {
    const rows = await this.find({ enabled: false });
    return new Set(rows.map((row) => row.key));
  }

  async isEnabled(key: string): Promise<boolean> {
    const row = await this.findOne({ key });
    return row?.enabled ?? true;
  }

  /** Sets the state in one statement, so that two admins at once cannot collide on insert. */
  async setEnabled(key: string, enabled: boolean, updatedBy?: string): Promise<ServiceState> {
    return this.getEntityManager().upsert(ServiceState, {
      key,
      enabled,
      updatedAt: new Date(),
      updatedBy,
    });
  }
}
