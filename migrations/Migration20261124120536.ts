import { Migration } from '@mikro-orm/migrations';

export class Migration20261124120536 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "entitlement_rule" ("id" uuid not null, "entitlement" text not null, "match" text check ("match" in ('exact', 'prefix')) not null, "role" text check ("role" in ('admin', 'operator')) not null, "created_by" uuid null, "created_at" timestamptz not null, constraint "entitlement_rule_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "entitlement_rule" add constraint "entitlement_rule_entitlement_match_role_unique" unique ("entitlement", "match", "role");`,
    );

    this.addSql(
      `create table "auth_login_flow" ("state" text not null, "nonce" text not null, "code_verifier" text not null, "return_to" text not null, "created_at" timestamptz not null, constraint "auth_login_flow_pkey" primary key ("state"));`,
    );

    this.addSql(
      `create table "app_user" ("id" uuid not null, "issuer" text not null, "subject" text not null, "email" text null, "name" text null, "entitlements" jsonb not null, "blocked" boolean not null default false, "created_at" timestamptz not null, "last_login_at" timestamptz null, constraint "app_user_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "app_user" add constraint "app_user_issuer_subject_unique" unique ("issuer", "subject");`,
    );

    this.addSql(
      `create table "auth_session" ("id" uuid not null, "secret_hash" text not null, "user_id" uuid not null, "id_token" text null, "created_at" timestamptz not null, "expires_at" timestamptz not null, constraint "auth_session_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "auth_session" add constraint "auth_session_secret_hash_unique" unique ("secret_hash");`,
    );

    this.addSql(
      `create table "personal_access_token" ("id" uuid not null, "user_id" uuid not null, "name" text not null, "secret_hash" text not null, "hint" text not null, "scopes" jsonb not null, "expires_at" timestamptz not null, "created_at" timestamptz not null, "last_used_at" timestamptz null, "revoked_at" timestamptz null, constraint "personal_access_token_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "personal_access_token" add constraint "personal_access_token_secret_hash_unique" unique ("secret_hash");`,
    );

    this.addSql(
      `alter table "auth_session" add constraint "auth_session_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "personal_access_token" add constraint "personal_access_token_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on update cascade on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "auth_session" drop constraint "auth_session_user_id_foreign";`);

    this.addSql(
      `alter table "personal_access_token" drop constraint "personal_access_token_user_id_foreign";`,
    );

    this.addSql(`drop table if exists "entitlement_rule" cascade;`);

    this.addSql(`drop table if exists "auth_login_flow" cascade;`);

    this.addSql(`drop table if exists "app_user" cascade;`);

    this.addSql(`drop table if exists "auth_session" cascade;`);

    this.addSql(`drop table if exists "personal_access_token" cascade;`);
  }
}
