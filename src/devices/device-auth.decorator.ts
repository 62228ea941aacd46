import {
  applyDecorators,
  CanActivate,
  ExecutionContext,
  Injectable,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { DeviceRoute } from '../common/auth.decorators';
import type { DevicePrincipal } from '../common/principal';
import { ProblemDto } from '../common/problem';
import { RateLimiter } from '../common/rate-limiter';
import { DEVICE_TOKEN_PREFIX } from './device-state';
import { DeviceTokens } from './device-tokens.service';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Authenticates the device token of an agent route; user credentials are refused there. */
@Injectable()
export class DeviceTokenGuard implements CanActivate {
  constructor(
    private readonly tokens: DeviceTokens,
    private readonly rateLimiter: RateLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request & { user?: DevicePrincipal }>();
    const token = BEARER.exec(req.headers.authorization ?? '')?.[1];
    const refuse = (detail: string) => {
      http.getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="labgate-agent"');
      return new UnauthorizedException(detail);
    };
    if (!token?.startsWith(DEVICE_TOKEN_PREFIX)) {
      throw refuse('This endpoint takes a device token: Authorization: Bearer lgd_…');
    }
    const device = await this.tokens.authenticate(token);
    if (!device) {
      throw refuse(
        'This device token is unknown or was rotated; ask an admin for the current one.',
      );
    }
    req.user = device;
    await this.rateLimiter.count(req, http.getResponse<Response>(), device);
    return true;
  }
}

/**
 * The route is for device agents: only a registered device's token (`lgd_…`) opens it, and
 * the caller is available as `@CurrentDevice()`.
 */
export const DeviceAuth = () =>
  applyDecorators(
    DeviceRoute(),
    UseGuards(DeviceTokenGuard),
    ApiUnauthorizedResponse({
      type: ProblemDto,
      description: 'No, an unknown or a rotated device token.',
    }),
  );
