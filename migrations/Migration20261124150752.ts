import { Migration } from '@mikro-orm/migrations';

export class Migration20261124150752 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "service_state" add column "priority" int null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "service_state" drop column "priority";`);
  }
}
