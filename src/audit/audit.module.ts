import { Global, Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { AuditEvent } from './audit-event.entity';
import { AuditService } from './audit.service';

/**
 * The append-only audit log. Its own module (not part of `admin`) because every feature
 * writes audit rows in its own transactions while only `admin` reads them.
 */
@Global()
@Module({
  imports: [MikroOrmModule.forFeature([AuditEvent])],
  providers: [AuditService],
  exports: [AuditService],
})
export class AuditModule {}
