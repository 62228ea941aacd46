import { Body, Controller, Get, Module, Post } from '@nestjs/common';
import { IsInt, IsString, Max, MaxLength, Min } from 'class-validator';
import request from 'supertest';
import { AppModule } from '../../src/app.module';
import { Public } from '../../src/common/public.decorator';
import { AppConfig } from '../../src/config';
import { startTestApp, TestApp } from '../support/test-app';

class EchoBody {
  @IsString()
  @MaxLength(10)
  name: string;

  @IsInt()
  @Min(1)
  @Max(5)
  count: number;
}

/** Test-only routes: something to validate and something that really breaks. */
@Controller('test-problems')
class ProblemTestController {
  @Public()
  @Post('echo')
  echo(@Body() body: EchoBody) {
    return body;
  }

  @Public()
  @Get('crash')
  crash() {
    throw new Error('database password is hunter2');
  }
}

@Module({ controllers: [ProblemTestController] })
class ProblemTestModule {}

const withTestRoutes = (config: AppConfig) => ({
  module: class ProblemTestRoot {},
  imports: [AppModule.forRoot(config), ProblemTestModule],
});

function expectProblem(res: request.Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: expect.any(String), title: expect.any(String), status });
  expect(res.body.requestId).toBe(res.headers['x-request-id']);
}

describe('problem+json errors', () => {
  let app: TestApp;
  let http: ReturnType<TestApp['app']['getHttpServer']>;

  beforeAll(async () => {
    app = await startTestApp({ BODY_LIMIT: '1kb' }, withTestRoutes);
    http = app.app.getHttpServer();
  });
  afterAll(() => app.close());

  it('answers an unknown route with a 404 problem', async () => {
    const res = await request(http).get('/api/v1/no-such-thing');
    expectProblem(res, 404);
    expect(res.body.instance).toBe('/api/v1/no-such-thing');
  });

  it('keeps a sane caller request id and replaces an insane one', async () => {
    const kept = await request(http).get('/nope').set('X-Request-Id', 'trace-123');
    expect(kept.headers['x-request-id']).toBe('trace-123');
    expect(kept.body.requestId).toBe('trace-123');
    const replaced = await request(http).get('/nope').set('X-Request-Id', 'x'.repeat(300));
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('lists every invalid field in errors[]', async () => {
    const res = await request(http)
      .post('/api/v1/test-problems/echo')
      .send({ name: 'much too long a name', count: 9, extra: true });
    expectProblem(res, 400);
    const fields = (res.body.errors as Array<{ field: string }>).map((e) => e.field).sort();
    expect(fields).toEqual(['count', 'extra', 'name']);
    expect(res.body.errors).toContainEqual({
      field: 'extra',
      message: 'property extra should not exist',
    });
  });

  it('names an undeclared property by its start only', async () => {
    const res = await request(http)
      .post('/api/v1/test-problems/echo')
      .send({ name: 'ok', count: 1, ['p'.repeat(300)]: true });
    expectProblem(res, 400);
    const shown = `${'p'.repeat(100)}…`;
    expect(res.body.errors).toEqual([
      { field: shown, message: `property ${shown} should not exist` },
    ]);
    expect(res.body.detail).toBe(`Invalid request: property ${shown} should not exist.`);
  });

  it('passes a valid body through, transformed', async () => {
    const res = await request(http)
      .post('/api/v1/test-problems/echo')
      .send({ name: 'ok', count: 2 })
      .expect(201);
    expect(res.body).toEqual({ name: 'ok', count: 2 });
  });

  it('answers malformed JSON with a 400 problem', async () => {
    const res = await request(http)
      .post('/api/v1/test-problems/echo')
      .set('Content-Type', 'application/json')
      .send('{"name": ');
    expectProblem(res, 400);
    expect(res.body.detail).toMatch(/^The request body is not valid JSON \(/);
  });

  it('answers an oversize body with a 413 problem', async () => {
    const res = await request(http)
      .post('/api/v1/test-problems/echo')
      .send({ name: 'x'.repeat(5000), count: 1 });
    expectProblem(res, 413);
    expect(res.body.detail).toMatch(/larger than the 1024-byte limit/);
  });

  it('answers a real fault with a 500 that leaks nothing outside development', async () => {
    const res = await request(http).get('/api/v1/test-problems/crash');
    expectProblem(res, 500);
    expect(JSON.stringify(res.body)).not.toMatch(/hunter2|stack|at /);
  });

  it('shows the stack of a 500 in development only', async () => {
    const dev = await startTestApp({ NODE_ENV: 'development' }, withTestRoutes);
    try {
      const res = await request(dev.app.getHttpServer()).get('/api/v1/test-problems/crash');
      expectProblem(res, 500);
      expect(res.body.stack).toMatch(/hunter2/);
    } finally {
      await dev.close();
    }
  });
});
