import { EntityRepository } from '@mikro-orm/postgresql';
import { AuditEvent } from './audit-event.entity';

export class AuditEventRepository extends EntityRepository<AuditEvent> {}
