import { CreateDeviceDto } from '../../devices/dto/device.dto';
import { DevicesService } from '../../devices/devices.service';
import { CliModule } from '../cli.module';
import {
  CliIo,
  cliOrigin,
  loadCliConfig,
  startRuntime,
  validateAs,
  withAppContext,
} from '../cli-runtime';

export interface DeviceCreateOptions {
  name: string;
  kind: string;
  runner: string;
  services: string[];
  slots: string;
  location?: string;
  label: Record<string, string>;
}

/** `device:create`: registers a device as POST /api/v1/devices does and prints its token once. */
export async function deviceCreate(options: DeviceCreateOptions, io: CliIo): Promise<void> {
  // As the API receives it: numbers as numbers, everything else as given, so that the DTO
  // (the same class-validator rules as the route) judges every value.
  const body = {
    name: options.name,
    kind: options.kind,
    runner: options.runner,
    services: options.services,
    slots: /^\d+$/.test(options.slots) ? Number(options.slots) : options.slots,
    ...(options.location !== undefined && { location: options.location }),
    ...(Object.keys(options.label).length > 0 && { labels: options.label }),
  };
  const dto = await validateAs(CreateDeviceDto, body);
  const runtime = await startRuntime(loadCliConfig(), io, { redis: false });
  try {
    await withAppContext(CliModule.forRoot(runtime.config, 'devices'), io, async (app) => {
      // No actor: labgate itself registers it (the audit row's actor is `system`).
      const device = await app.get(DevicesService).create(undefined, dto, cliOrigin());
      io.out(device.token);
      io.note(
        `device ${device.name} (${device.id}) registered: ${device.kind}, runner ${device.runner}, ` +
          `services ${device.services.join(',')}, ${device.slots} slot(s). ` +
          'Its token is shown only this once.',
      );
    });
  } finally {
    await runtime.stop();
  }
}
