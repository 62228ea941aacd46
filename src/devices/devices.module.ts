import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { CatalogModule } from '../catalog/catalog.module';
import { RateLimitModule } from '../common/rate-limit.module';
import { AgentController } from './agent.controller';
import { DeviceTokenGuard } from './device-auth.decorator';
import { DeviceCommand } from './device-command.entity';
import { DeviceCommandsService } from './device-commands.service';
import { DeviceEvents } from './device-events';
import { DeviceTokens } from './device-tokens.service';
import { Device } from './device.entity';
import { DevicesController } from './devices.controller';
import { DevicesService } from './devices.service';

@Module({
  imports: [MikroOrmModule.forFeature([Device, DeviceCommand]), CatalogModule, RateLimitModule],
  controllers: [DevicesController, AgentController],
  providers: [DeviceTokens, DeviceTokenGuard, DeviceEvents, DevicesService, DeviceCommandsService],
  // RateLimitModule: modules whose controllers use DeviceTokenGuard (the jobs module's agent
  // routes) need its RateLimiter too.
  exports: [
    DeviceTokens,
    DeviceTokenGuard,
    DeviceEvents,
    DevicesService,
    DeviceCommandsService,
    RateLimitModule,
  ],
})
export class DevicesModule {}
