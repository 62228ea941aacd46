import { EntityManager, UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { AuditService } from '../../audit/audit.service';
import { CreateTokenDto } from '../../auth/dto/token.dto';
import { EntitlementRule, GrantedRole, RuleMatch } from '../../auth/entitlement-rule.entity';
import { RolesService } from '../../auth/roles.service';
import { TokensService } from '../../auth/tokens.service';
import { User } from '../../auth/user.entity';
import type { RequestOrigin } from '../../common/auth.decorators';
import { CliError } from '../cli-error';
import { CliModule } from '../cli.module';
import {
  CliIo,
  cliOrigin,
  loadCliConfig,
  startRuntime,
  validateAs,
  withAppContext,
} from '../cli-runtime';
import {
  describeUser,
  LOCAL_ADMIN_ENTITLEMENT,
  LOCAL_ISSUER,
  parseUserRef,
  UserRef,
} from '../user-ref';

export interface TokenCreateOptions {
  user?: string;
  issuer?: string;
  subject?: string;
  create?: boolean;
  email?: string;
  admin?: boolean;
  scopes?: string[];
  expiresDays: number;
  name: string;
}

const DAY_MS = 24 * 3600_000;

function userRefOf(options: TokenCreateOptions): UserRef {
  const identity = options.issuer !== undefined || options.subject !== undefined;
  if (options.user !== undefined && identity) {
    throw new CliError('give either --user, or --issuer and --subject, not both');
  }
  if (identity) {
    if (!options.issuer || !options.subject) {
      throw new CliError('--issuer and --subject go together');
    }
    return { kind: 'identity', issuer: options.issuer, subject: options.subject };
  }
  if (options.user === undefined) {
    throw new CliError(
      'say whose token: --user <id|email|issuer:subject>, or --issuer and --subject',
    );
  }
  try {
    return parseUserRef(options.user);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

async function findUser(em: EntityManager, ref: UserRef): Promise<User | undefined> {
  switch (ref.kind) {
    case 'id':
      return (await em.findOne(User, ref.id)) ?? undefined;
    case 'identity':
      return (await em.findOne(User, { issuer: ref.issuer, subject: ref.subject })) ?? undefined;
    case 'email': {
      const rows = await em
        .getConnection()
        .execute<Array<{ id: string }>>('select id from app_user where lower(email) = lower(?)', [
          ref.email,
        ]);
      if (rows.length > 1) {
        throw new CliError(
          `${rows.length} users have the email ${ref.email}; name one by id or issuer:subject`,
        );
      }
      return rows.length ? em.findOneOrFail(User, rows[0].id) : undefined;
    }
  }
}

function notFound(ref: UserRef): CliError {
  const who =
    ref.kind === 'identity'
      ? `${ref.issuer}:${ref.subject}`
      : ref.kind === 'id'
        ? ref.id
        : ref.email;
  const hint =
    ref.kind === 'identity'
      ? 'add --create to create it'
      : `a user exists once they have signed in; or create a local account with --user ${LOCAL_ISSUER}:<name> --create`;
  return new CliError(`there is no user ${who}: ${hint}`);
}

/**
 * Admin without SSO: the local account gets LOCAL_ADMIN_ENTITLEMENT, and an entitlement rule
 * (visible and removable at /api/v1/admin/entitlement-rules) makes that entitlement admin.
 * Only local accounts: an SSO login replaces a user's entitlements with the provider's, so the
 * grant would silently vanish; SSO users become admins through ADMIN_ENTITLEMENTS or a rule.
 */
async function grantAdmin(
  em: EntityManager,
  audit: AuditService,
  user: User,
  origin: RequestOrigin,
): Promise<void> {
  if (user.issuer !== LOCAL_ISSUER) {
    throw new CliError(
      `--admin is for local accounts (${LOCAL_ISSUER}:<name>) only: ${describeUser(user)} signs ` +
        'in through its provider, which sets its entitlements; make SSO users admins with ' +
        'ADMIN_ENTITLEMENTS or POST /api/v1/admin/entitlement-rules',
    );
  }
  const rule = {
    entitlement: LOCAL_ADMIN_ENTITLEMENT,
    match: RuleMatch.Exact,
    role: GrantedRole.Admin,
  };
  try {
    await em.transactional(async (tx) => {
      if (await tx.findOne(EntitlementRule, rule)) {
        return;
      }
      const created = tx.create(EntitlementRule, { ...rule, createdAt: new Date() });
      audit.record(
        {
          action: 'entitlement_rule.create',
          targetType: 'entitlement_rule',
          targetId: created.id,
          origin,
          details: { ...rule, via: 'cli' },
        },
        tx,
      );
    });
  } catch (err) {
    if (!(err instanceof UniqueConstraintViolationException)) {
      throw err; // else another run created the same rule at the same time: it exists
    }
  }
  if (!user.entitlements.includes(LOCAL_ADMIN_ENTITLEMENT)) {
    user.entitlements = [...user.entitlements, LOCAL_ADMIN_ENTITLEMENT];
    audit.record(
      {
        action: 'user.grant_admin',
        targetType: 'user',
        targetId: user.id,
        origin,
        details: { entitlement: LOCAL_ADMIN_ENTITLEMENT },
      },
      em,
    );
    await em.flush();
  }
}

/**
 * `token:create`: a personal access token (`lgp_…`) for a user, printed once on stdout; with
 * `--create` and `--admin`, the first admin of an installation that has no SSO admin yet.
 */
export async function tokenCreate(options: TokenCreateOptions, io: CliIo): Promise<void> {
  const ref = userRefOf(options);
  if (options.create && ref.kind !== 'identity') {
    throw new CliError('--create needs the identity of the user: --user issuer:subject');
  }
  if (options.email !== undefined && !options.create) {
    throw new CliError('--email is for a user --create makes');
  }
  // Checked before anything is written: a bad scope must not leave a half-made admin behind.
  const dto = await validateAs(CreateTokenDto, {
    name: options.name,
    scopes: options.scopes ?? (options.admin ? ['read', 'write', 'admin'] : ['read', 'write']),
    expiresAt: new Date(Date.now() + options.expiresDays * DAY_MS).toISOString(),
  });
  const config = loadCliConfig();
  const runtime = await startRuntime(config, io, { redis: false });
  try {
    await withAppContext(CliModule.forRoot(runtime.config, 'users'), io, async (app) => {
      const em = app.get(EntityManager).getContext();
      const audit = app.get(AuditService);
      const origin = cliOrigin();
      let user = await findUser(em, ref);
      const created = !user;
      if (!user) {
        if (!options.create || ref.kind !== 'identity') {
          throw notFound(ref);
        }
        user = await em
          .getRepository(User)
          .upsertIdentity(
            { issuer: ref.issuer, subject: ref.subject, email: options.email },
            false,
          );
        audit.record(
          {
            action: 'user.create',
            targetType: 'user',
            targetId: user.id,
            origin,
            details: { issuer: user.issuer, subject: user.subject, email: user.email },
          },
          em,
        );
        await em.flush();
      }
      if (user.blocked) {
        throw new CliError(`${describeUser(user)} is blocked: unblock the user first`);
      }
      if (options.admin) {
        await grantAdmin(em, audit, user, origin);
      }
      // No actor: labgate itself acts (the audit row's actor is `system`, its owner the user).
      const token = await app.get(TokensService).create(undefined, user.id, dto, origin);
      const roles = await app.get(RolesService).rolesFor(user.entitlements);
      io.out(token.token);
      io.note(
        `token "${token.name}" (${token.hint}…) for ${describeUser(user)}${created ? ' (user created)' : ''}: ` +
          `roles ${roles.join(', ')}; scopes ${dto.scopes.join(', ')}; ` +
          `expires ${dto.expiresAt.toISOString()}. It is shown only this once.`,
      );
      if (dto.scopes.includes('admin') && !roles.includes('admin')) {
        io.note('note: the user is not an admin, so the admin scope adds nothing (see --admin)');
      }
    });
  } finally {
    await runtime.stop();
  }
}
