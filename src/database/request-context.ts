import { AsyncLocalStorage } from 'node:async_hooks';
import { RequestContext, type EntityManager, type MikroORM } from '@mikro-orm/core';

interface Scope {
  root: EntityManager;
  em?: EntityManager;
  forking?: boolean;
}

const scopes = new AsyncLocalStorage<Scope>();

/**
 * MikroORM's `context` option: inside an HTTP request, the request's own EntityManager, forked
 * when the request first uses one; elsewhere MikroORM's RequestContext (the CLI's, say).
 */
export function requestEntityManager(name: string): EntityManager | undefined {
  const scope = scopes.getStore();
  if (scope && scope.root.name === name) {
    if (!scope.em) {
      if (scope.forking) {
        // The fork being made asks for its context: itself (undefined: MikroORM uses `this`).
        return undefined;
      }
      scope.forking = true;
      try {
        // disableContextResolution: forked from the root, not from this (not yet made) fork.
        scope.em = scope.root.fork({ useContext: true, disableContextResolution: true });
      } finally {
        scope.forking = false;
      }
    }
    return scope.em;
  }
  return RequestContext.getEntityManager(name);
}

/**
 * Express middleware giving each request its own EntityManager, as @mikro-orm/nestjs's
 * request context does, but made on first use: a request that never reads the database
 * (liveness probes, job views kept in memory) does not pay for a unit of work and identity
 * map it would throw away.
 */
export function requestContext(orm: MikroORM) {
  const root = orm.em;
  return (_req: unknown, _res: unknown, next: () => void) => scopes.run({ root }, next);
}
