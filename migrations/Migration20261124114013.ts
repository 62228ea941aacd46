import { Migration } from '@mikro-orm/migrations';

export class Migration20261124114013 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "audit_event" ("id" uuid not null, "at" timestamptz not null, "actor_id" uuid null, "actor_kind" text not null, "action" text not null, "target_type" text not null, "target_id" text null, "ip" text null, "request_id" text null, "details" jsonb null, constraint "audit_event_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "audit_event_target_type_target_id_index" on "audit_event" ("target_type", "target_id");`,
    );
    this.addSql(`create index "audit_event_at_id_index" on "audit_event" ("at", "id");`);
  }
}
