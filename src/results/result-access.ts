import { hasRole, type Principal } from '../common/principal';
import type { ResultReader } from './result-sql';
import type { Result } from './result.entity';

/**
 * Who may see and change a result. The same rules as the listing's SQL (`visibleTo` in the
 * repository), for one loaded result; keep the two together.
 */
export function readerOf(principal: Principal | undefined): ResultReader {
  return {
    userId: principal?.kind === 'user' ? principal.userId : undefined,
    admin: hasRole(principal, 'admin'),
  };
}

export function canSee(result: Result, reader: ResultReader): boolean {
  if (reader.admin) {
    return true;
  }
  const own = reader.userId !== undefined && result.owner.id === reader.userId;
  switch (result.status) {
    case 'published':
      return (
        result.visibility === 'public' ||
        (reader.userId !== undefined && result.visibility === 'institution') ||
        own
      );
    case 'under_review':
      return own;
    case 'removed':
      return false;
  }
}

/** Tags and visibility: the owner and admins. */
export function canManage(result: Result, reader: ResultReader): boolean {
  return reader.admin || (reader.userId !== undefined && result.owner.id === reader.userId);
}
