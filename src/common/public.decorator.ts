import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';

export const IS_PUBLIC = 'labgate:public';

/** The route needs no credentials (health, login, documentation). Everything else does. */
export const Public = () =>
  applyDecorators(SetMetadata(IS_PUBLIC, true), ApiExtension('x-public', true));

export const IS_DEVICE_ROUTE = 'labgate:device-route';

/**
 * Marks an agent route: the user guard stands aside and the route's own device-token guard
 * decides (see `@DeviceAuth()` in the devices module). Shown in Swagger as the `device` scheme.
 */
export const DeviceRoute = () =>
  applyDecorators(SetMetadata(IS_DEVICE_ROUTE, true), ApiExtension('x-device', true));
