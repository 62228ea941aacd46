import { Global, Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { OutboxEvent } from './outbox-event.entity';
import { Outbox } from './outbox.service';

/** Global like audit: every feature records its domain events; notifications read them. */
@Global()
@Module({
  imports: [MikroOrmModule.forFeature([OutboxEvent])],
  providers: [Outbox],
  exports: [Outbox],
})
export class OutboxModule {}
