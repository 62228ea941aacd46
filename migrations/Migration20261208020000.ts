import { Migration } from '@mikro-orm/migrations';

/**
 * Every statement that changes `service_state` (an admin enabling, disabling or re-prioritising
 * a service) notifies `labgate_service_state_changed`, so that API processes can keep each
 * service's settings in memory for submissions (src/catalog/catalog.service.ts).
 */
export class Migration20261208020000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create or replace function "service_state_changed_notify"() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify('labgate_service_state_changed', '');
        return null;
      end $$;`);
    this.addSql(`create trigger "service_state_changed_notify"
      after insert or update or delete or truncate on "service_state"
      for each statement execute function "service_state_changed_notify"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "service_state_changed_notify" on "service_state";`);
    this.addSql(`drop function if exists "service_state_changed_notify"();`);
  }
}
