import { Migration } from '@mikro-orm/migrations';

export class Migration20261124153443 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "notification" ("id" uuid not null, "user_id" uuid not null, "delivery_id" uuid not null, "event" text not null, "title" text not null, "body" text not null, "link" text null, "created_at" timestamptz not null, "read_at" timestamptz null, constraint "notification_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "notification" add constraint "notification_delivery_id_unique" unique ("delivery_id");`,
    );
    this.addSql(
      `create index "notification_user_id_read_at_created_at_index" on "notification" ("user_id", "read_at", "created_at");`,
    );

    this.addSql(
      `create table "notification_cursor" ("name" text not null, "position" bigint not null default '0', constraint "notification_cursor_pkey" primary key ("name"));`,
    );

    this.addSql(
      `create table "notification_delivery" ("id" uuid not null, "key" text not null, "event" text not null, "channel" text check ("channel" in ('email', 'webhook', 'inapp')) not null, "user_id" uuid not null, "webhook_id" uuid null, "message" jsonb not null, "state" text check ("state" in ('pending', 'sent', 'failed')) not null default 'pending', "attempts" int not null default 0, "last_error" text null, "last_status" int null, "created_at" timestamptz not null, "sent_at" timestamptz null, constraint "notification_delivery_pkey" primary key ("id"));`,
    );
    this.addSql(
      `alter table "notification_delivery" add constraint "notification_delivery_key_unique" unique ("key");`,
    );
    this.addSql(
      `create index "notification_delivery_webhook_id_created_at_index" on "notification_delivery" ("webhook_id", "created_at");`,
    );
    this.addSql(
      `create index "notification_delivery_state_created_at_index" on "notification_delivery" ("state", "created_at");`,
    );

    this.addSql(
      `create table "notification_preference" ("user_id" uuid not null, "event" text not null, "channel" text not null, "enabled" boolean not null, constraint "notification_preference_pkey" primary key ("user_id", "event", "channel"));`,
    );

    this.addSql(
      `create table "outbox_event" ("id" bigserial primary key, "at" timestamptz not null, "type" text not null, "subject_type" text not null, "subject_id" text not null, "data" jsonb not null);`,
    );

    this.addSql(
      `create table "webhook" ("id" uuid not null, "user_id" uuid not null, "url" text not null, "events" jsonb not null, "secret" text not null, "created_at" timestamptz not null, constraint "webhook_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "webhook_user_id_index" on "webhook" ("user_id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "notification" cascade;`);

    this.addSql(`drop table if exists "notification_cursor" cascade;`);

    this.addSql(`drop table if exists "notification_delivery" cascade;`);

    this.addSql(`drop table if exists "notification_preference" cascade;`);

    this.addSql(`drop table if exists "outbox_event" cascade;`);

    this.addSql(`drop table if exists "webhook" cascade;`);
  }
}
