import {
  ForbiddenException,
  HttpStatus,
  Injectable,
  NestMiddleware,
  UnauthorizedException,
} from '@nestjs/common';
import { ApplicationConfig } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { Authenticator } from '../auth/authenticator';
import { ProblemException } from '../common/problem';

const READ_METHODS = ['GET', 'HEAD'];

/**
 * The queue dashboard is plain Express (Bull Board), out of reach of the global guard, so this
 * middleware applies the same rules in front of it: the same Authenticator (session cookie,
 * personal access token or bearer token; blocked users refused) and the admin role. A browser
 * without a session is sent to sign in; anything else gets a problem+json 401 or 403.
 */
@Injectable()
export class QueueBoardAccess implements NestMiddleware {
  private readonly loginPath: string;

  constructor(
    private readonly authenticator: Authenticator,
    app: ApplicationConfig,
  ) {
    this.loginPath = `/${app.getGlobalPrefix()}/auth/login`.replace(/\/+/g, '/');
  }

  async use(req: Request, res: Response, next: NextFunction): Promise<void> {
    if (!READ_METHODS.includes(req.method)) {
      throw new ProblemException(
        HttpStatus.METHOD_NOT_ALLOWED,
        'The queue dashboard is read-only: cancel, retry or reprioritise jobs through /api/v1/jobs.',
      );
    }
    const principal = await this.authenticator.authenticate(req).catch((err: unknown) => {
      res.setHeader('WWW-Authenticate', 'Bearer realm="labgate"');
      throw err;
    });
    if (!principal) {
      if (req.accepts(['json', 'html']) === 'html') {
        const returnTo = encodeURIComponent(req.originalUrl);
        res.redirect(302, `${this.loginPath}?returnTo=${returnTo}`);
        return;
      }
      res.setHeader('WWW-Authenticate', 'Bearer realm="labgate"');
      throw new UnauthorizedException(
        'Sign in first: a session cookie (GET /api/v1/auth/login) or Authorization: Bearer <token>.',
      );
    }
    if (!principal.roles.includes('admin')) {
      throw new ForbiddenException('The queue dashboard needs the admin role.');
    }
    next();
  }
}
