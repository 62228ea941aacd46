import { Migration } from '@mikro-orm/migrations';

export class Migration20261124145606 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "device" ("id" uuid not null, "name" text not null, "kind" text check ("kind" in ('gpu', 'workstation', 'enclosure', 'hpc')) not null, "runner" text check ("runner" in ('local', 'agent', 'ssh')) not null, "services" jsonb not null, "slots" int not null default 1, "location" text null, "labels" jsonb not null, "admin_state" text check ("admin_state" in ('enabled', 'disabled', 'maintenance')) not null default 'enabled', "ssh" jsonb null, "token_hash" text not null, "token_hint" text not null, "last_heartbeat_at" timestamptz null, "reported_status" text null, "reported_metrics" jsonb null, "reported_jobs" jsonb null, "active_jobs" int not null default 0, "last_assigned_at" timestamptz null, "down_since" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "device_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "device" add constraint "device_name_unique" unique ("name");`);
    this.addSql(
      `alter table "device" add constraint "device_token_hash_unique" unique ("token_hash");`,
    );
    this.addSql(`create index "device_last_heartbeat_at_index" on "device" ("last_heartbeat_at");`);

    this.addSql(
      `create table "device_command" ("id" uuid not null, "device_id" uuid not null, "type" text check ("type" in ('start', 'stop', 'restart', 'custom')) not null, "args" jsonb not null, "state" text check ("state" in ('pending', 'delivered', 'acknowledged', 'failed')) not null default 'pending', "issued_by" text not null, "created_at" timestamptz not null, "delivered_at" timestamptz null, "acknowledged_at" timestamptz null, "message" text null, constraint "device_command_pkey" primary key ("id"));`,
    );
    this.addSql(
      `create index "device_command_device_id_state_created_at_index" on "device_command" ("device_id", "state", "created_at");`,
    );

    this.addSql(
      `alter table "device_command" add constraint "device_command_device_id_foreign" foreign key ("device_id") references "device" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "job" add column "device_id" uuid null, add column "target_device_id" uuid null, add column "batch_id" uuid null, add column "priority" int not null default 0, add column "assignment" int not null default 0, add column "assigned_at" timestamptz null, add column "not_before" timestamptz null, add column "external_id" text null;`,
    );
    this.addSql(
      `alter table "job" add constraint "job_device_id_foreign" foreign key ("device_id") references "device" ("id") on update cascade on delete set null;`,
    );
    this.addSql(`create index "job_batch_id_index" on "job" ("batch_id");`);
    this.addSql(`create index "job_assigned_at_index" on "job" ("assigned_at");`);
    this.addSql(`create index "job_device_id_state_index" on "job" ("device_id", "state");`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "device_command" drop constraint "device_command_device_id_foreign";`);

    this.addSql(`alter table "job" drop constraint "job_device_id_foreign";`);

    this.addSql(`drop table if exists "device" cascade;`);

    this.addSql(`drop table if exists "device_command" cascade;`);

    this.addSql(`drop index "job_batch_id_index";`);
    this.addSql(`drop index "job_assigned_at_index";`);
    this.addSql(`drop index "job_device_id_state_index";`);
    this.addSql(
      `alter table "job" drop column "device_id", drop column "target_device_id", drop column "batch_id", drop column "priority", drop column "assignment", drop column "assigned_at", drop column "not_before", drop column "external_id";`,
    );
  }
}
