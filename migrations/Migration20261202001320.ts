import { Migration } from '@mikro-orm/migrations';

/**
 * The audit log becomes append-only in PostgreSQL itself: a trigger refuses UPDATE, DELETE
 * and TRUNCATE on audit_event, whoever asks (the app, a retention job, a console). Plus an
 * index for the admin API's actor filter.
 */
export class Migration20261202001320 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "audit_event_actor_id_at_id_index" on "audit_event" ("actor_id", "at", "id");`,
    );
    this.addSql(
      `create function "audit_event_append_only"() returns trigger language plpgsql as $$
       begin
         raise exception 'audit_event is append-only: % is refused', tg_op
           using errcode = 'insufficient_privilege',
                 hint = 'Audit rows are never changed or deleted.';
       end
       $$;`,
    );
    this.addSql(
      `create trigger "audit_event_no_update_or_delete" before update or delete on "audit_event"
       for each row execute function "audit_event_append_only"();`,
    );
    this.addSql(
      `create trigger "audit_event_no_truncate" before truncate on "audit_event"
       for each statement execute function "audit_event_append_only"();`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger "audit_event_no_truncate" on "audit_event";`);
    this.addSql(`drop trigger "audit_event_no_update_or_delete" on "audit_event";`);
    this.addSql(`drop function "audit_event_append_only"();`);
    this.addSql(`drop index "audit_event_actor_id_at_id_index";`);
  }
}
