import { Migration } from '@mikro-orm/migrations';

/**
 * Changes API processes keep in memory are notified when they commit, whoever made them
 * (src/database/change-feed.ts): every update and delete of a user row on
 * `labgate_user_changed` (its id), and every statement that changes the entitlement rules on
 * `labgate_rules_changed`. A bearer request's user row and roles are then served from memory
 * until either changes (src/auth/signed-in-users.ts).
 */
export class Migration20261202110000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create or replace function "app_user_changed_notify"() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify('labgate_user_changed', old.id::text);
        return null;
      end $$;`);
    this.addSql(`create trigger "app_user_changed_notify" after update or delete on "app_user"
      for each row execute function "app_user_changed_notify"();`);
    this.addSql(`create or replace function "entitlement_rule_changed_notify"() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify('labgate_rules_changed', '');
        return null;
      end $$;`);
    this.addSql(`create trigger "entitlement_rule_changed_notify"
      after insert or update or delete or truncate on "entitlement_rule"
      for each statement execute function "entitlement_rule_changed_notify"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "entitlement_rule_changed_notify" on "entitlement_rule";`);
    this.addSql(`drop function if exists "entitlement_rule_changed_notify"();`);
    this.addSql(`drop trigger if exists "app_user_changed_notify" on "app_user";`);
    this.addSql(`drop function if exists "app_user_changed_notify"();`);
  }
}
