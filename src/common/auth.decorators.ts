import {
  applyDecorators,
  createParamDecorator,
  ExecutionContext,
  SetMetadata,
} from '@nestjs/common';
import { ApiExtension, ApiForbiddenResponse } from '@nestjs/swagger';
import type { DevicePrincipal, Principal, Role, UserPrincipal } from './principal';
import { ProblemDto } from './problem';
import { IS_DEVICE_ROUTE, IS_PUBLIC } from './public.decorator';

export { DeviceRoute, Public } from './public.decorator';
export { IS_DEVICE_ROUTE, IS_PUBLIC };

export const REQUIRED_ROLES = 'labgate:roles';
export const OPTIONAL_AUTH = 'labgate:optional-auth';

/**
 * Credentials are read when present (bad ones are still a 401) but not required: the route
 * decides itself, e.g. a job route that a ticket token alone may open.
 */
export const OptionalAuth = () =>
  applyDecorators(SetMetadata(OPTIONAL_AUTH, true), ApiExtension('x-optional-auth', true));

/**
 * The caller needs one of these roles (admins pass every role check). Also shown in Swagger,
 * so that the requirement is visible where the route is declared and where it is read.
 */
export const Roles = (...roles: Role[]) =>
  applyDecorators(
    SetMetadata(REQUIRED_ROLES, roles),
    ApiExtension('x-roles', roles),
    ApiForbiddenResponse({ type: ProblemDto, description: `Requires role ${roles.join(' or ')}.` }),
  );

/** The calling device, on a `@DeviceAuth()` route. */
export const CurrentDevice = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): DevicePrincipal =>
    ctx.switchToHttp().getRequest<{ user: DevicePrincipal }>().user,
);

/** The signed-in user (routes that take user credentials only). */
export type { UserPrincipal };

export interface RequestWithPrincipal {
  user?: Principal;
}

/** The authenticated caller (the global guard guarantees one on non-public routes). */
export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): Principal | undefined =>
    ctx.switchToHttp().getRequest<RequestWithPrincipal>().user,
);

/** Where a request came from, for the audit log. */
export interface RequestOrigin {
  ip?: string;
  requestId?: string;
}

export const Origin = createParamDecorator((_data: unknown, ctx: ExecutionContext) => {
  const req = ctx.switchToHttp().getRequest<{ ip?: string; id?: string }>();
  return { ip: req.ip, requestId: req.id } satisfies RequestOrigin;
});
