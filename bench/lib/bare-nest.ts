/**
 * The framework's own ceiling for bench/http.ts: a NestJS app with one GET route on the same
 * adapter (platform-express) and nothing else — no guard, no database, no logging. Started as
 * a child process with PORT set; prints "listening <port>" once it answers.
 */
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';

@Controller()
class BareController {
  @Get('status')
  status() {
    return { id: '00000000-0000-4000-8000-000000000000', status: 'succeeded', progress: 100 };
  }
}

@Module({ controllers: [BareController] })
class BareModule {}

async function main() {
  const app = await NestFactory.create<NestExpressApplication>(BareModule, { logger: false });
  app.disable('x-powered-by');
  await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  console.log(`listening ${port}`);
}

void main();
