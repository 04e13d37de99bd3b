import {
  BadRequestException,
  Body,
  Controller,
  ForbiddenException,
  Get,
  Header,
  HttpCode,
  Inject,
  Module,
  NotFoundException,
  ConflictException,
  Param,
  Post,
  Query,
  Req,
  UnsupportedMediaTypeException,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type DynamicModule,
  type ModuleMetadata,
  type Type,
} from '@nestjs/common';
import { InvalidMessageError } from '../errors/invalid-message.error.js';
import { InvalidModuleOptionsError } from '../errors/invalid-module-options.error.js';
import { DEFAULT_INSTANCE_NAME, INSTANCE_NAME_RULE, isInstanceName, registrationToken } from '../options/instance-name.js';
import { MessageNotFoundError } from '../errors/message-not-found.error.js';
import { TransactionAlreadyEndedError } from '../errors/transaction-already-ended.error.js';
import type { MessageStatus } from '../message/message-status.enum.js';
import { DASHBOARD_CSP, dashboardPage, type DashboardAuth } from './dashboard.page.js';
import { unguardedExposureCheck } from './unguarded-exposure.js';
import { DashboardActivity } from './dashboard-activity.js';
import { TransactionalMessageAdmin, type LiveStatus, type MessageQuery, type OperatorInfo } from './transactional-message-admin.service.js';

const ADMIN_MODULE = 'TransactionalMessageAdminModule';

/** Options of {@link TransactionalMessageAdminModule.forRoot}. */
export interface AdminHttpOptions {
  /** Where the API and the dashboard are mounted. Default `'transactional-messages'`. */
  path?: string;
  /**
   * The guard every route runs behind (your authentication and authorization): a guard class, or
   * an instance. Required, unless `allowUnguarded` is set.
   */
  guard?: Type<CanActivate> | CanActivate;
  /** Mount without a guard (a network you trust, a local tool). Default `false`. */
  allowUnguarded?: boolean;
  /**
   * Serve the dashboard page at the path (the API is always under `<path>/api`). Default `true`.
   * `{ auth: 'bearer' }` for a guard that wants an `Authorization: Bearer` token: the page (which
   * holds no data) is then served without the guard and sends the token the operator enters, or
   * that a link of your application passes as `#token=...`, with every API call. Default auth
   * `'browser'`: the page is behind the guard too and its calls carry what the browser sends by
   * itself (a session cookie).
   */
  dashboard?: boolean | { auth?: DashboardAuth };
  /** Modules that the guard's own dependencies come from (an auth module). Default none. */
  imports?: ModuleMetadata['imports'];
  /**
   * The registration (`TransactionalMessageModule.forRoot({ name })`) whose messages it shows and
   * acts on. Default: the unnamed one. One admin module per registration, each at its own path.
   */
  instance?: string;
}

/** Maps the library's errors to HTTP statuses, with their messages. */
async function http<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof InvalidMessageError) throw new BadRequestException(error.message);
    if (error instanceof MessageNotFoundError) throw new NotFoundException(error.message);
    if (error instanceof TransactionAlreadyEndedError) throw new ConflictException(error.message);
    throw error;
  }
}

function toQuery(raw: Record<string, string | string[] | undefined>): MessageQuery {
  const one = (name: string) => (Array.isArray(raw[name]) ? raw[name]![0] : (raw[name] as string | undefined)) || undefined;
  const status = raw.status === undefined ? undefined : ([] as string[]).concat(raw.status).flatMap((s) => s.split(',')).filter(Boolean);
  const olderThan = one('olderThanMs');
  return {
    ...(status?.length ? { status: status as LiveStatus[] } : {}),
    ...(one('topic') ? { topic: one('topic') } : {}),
    ...(one('key') ? { key: one('key') } : {}),
    ...(one('producerGroup') ? { producerGroup: one('producerGroup') } : {}),
    ...(olderThan !== undefined ? { olderThanMs: Number(olderThan) } : {}),
  };
}

/**
 * State-changing requests must say `Content-Type: application/json`: a page of another site can
 * make a browser send a form or a "simple" request (text/plain, no body) with the operator's
 * cookies, but not this header without a CORS preflight, which this API never answers. The
 * dashboard sends it; so does any API client that posts JSON.
 */
class JsonRequestGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const headers = context.switchToHttp().getRequest<{ headers: Record<string, string | string[] | undefined> }>().headers;
    const type = String(headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') {
      throw new UnsupportedMediaTypeException(
        `State-changing admin requests need "Content-Type: application/json" (got ${type ? JSON.stringify(type) : 'none'}); send a JSON body ` +
          `(e.g. {}). A cross-site form or no-cors request cannot, which is what protects the operator's session.`,
      );
    }
    return true;
  }
}

/** Who acts: the request's user as the application's guard left it (`req.user`), if any. */
function operatorOf(request: { user?: unknown }): OperatorInfo {
  const user = request?.user as Record<string, unknown> | string | undefined | null;
  if (typeof user === 'string' && user) return { operator: user };
  if (user && typeof user === 'object') {
    for (const field of ['username', 'name', 'email', 'id', 'sub']) {
      const value = user[field];
      if ((typeof value === 'string' && value) || typeof value === 'number') return { operator: String(value) };
    }
  }
  return {};
}

/** A message as JSON: a raw-bytes body as base64. */
function serialisable<T extends { body?: unknown; bodyBytes?: unknown }>(message: T): unknown {
  const { bodyBytes: _bytes, ...rest } = message;
  return Buffer.isBuffer(rest.body) ? { ...rest, body: { base64: rest.body.toString('base64') } } : rest;
}

/**
 * The admin HTTP API and dashboard, opt-in: import it next to `TransactionalMessageModule`.
 *
 * ```ts
 * TransactionalMessageAdminModule.forRoot({ path: 'ops/messages', guard: AdminGuard })
 * // a named registration's messages, at a path of their own:
 * TransactionalMessageAdminModule.forRoot({ path: 'ops/archive-messages', guard: AdminGuard, instance: 'archive' })
 * ```
 *
 * `GET <path>` is the dashboard; the JSON API is under `<path>/api`: `summary`, `messages`
 * (query: status, topic, key, producerGroup, olderThanMs, limit, after), `messages/:id`,
 * `POST messages/:id/{commit,rollback,replay,discard}`, `POST replay-dead` and `POST purge`
 * (a JSON body with the filter). Mounting without a guard is refused unless `allowUnguarded`.
 */
@Module({})
export class TransactionalMessageAdminModule {
  static forRoot(options: AdminHttpOptions = {}): DynamicModule {
    const path = (options.path ?? 'transactional-messages').replace(/^\/+|\/+$/g, '');
    if (!/^[A-Za-z0-9._~\-/]*$/.test(path)) throw new InvalidModuleOptionsError('path', options.path, 'a URL path of letters, digits, . _ ~ - /', ADMIN_MODULE);
    if (!options.guard && options.allowUnguarded !== true) {
      throw new InvalidModuleOptionsError(
        'guard',
        undefined,
        'a guard for the admin API (it ends, replays and purges messages): TransactionalMessageAdminModule.forRoot({ guard: YourAuthGuard }), ' +
          'or allowUnguarded: true on a network you trust',
        ADMIN_MODULE,
      );
    }
    if (options.instance !== undefined && !isInstanceName(options.instance)) {
      throw new InvalidModuleOptionsError('instance', options.instance, INSTANCE_NAME_RULE, ADMIN_MODULE);
    }
    const adminToken = registrationToken(TransactionalMessageAdmin, options.instance);
    const guards = options.guard ? [options.guard] : [];
    const withDashboard = options.dashboard !== false;
    const auth = typeof options.dashboard === 'object' && options.dashboard !== null ? (options.dashboard.auth ?? 'browser') : 'browser';
    if (auth !== 'browser' && auth !== 'bearer') {
      throw new InvalidModuleOptionsError('dashboard.auth', auth, "'browser' (a session cookie: the default) or 'bearer' (a token the page sends)", ADMIN_MODULE);
    }

    /** The page: behind the guard, unless its calls carry a bearer token (then the page, which holds no data, cannot be). */
    @Controller(path)
    @UseGuards(...(auth === 'bearer' ? [] : guards))
    class TransactionalMessageDashboardController {
      @Get()
      @Header('content-type', 'text/html; charset=utf-8')
      @Header('cache-control', 'no-store')
      // Never framed (clickjacking), only its own script, requests only to its own API.
      @Header('x-frame-options', 'DENY')
      @Header('content-security-policy', DASHBOARD_CSP)
      @Header('x-content-type-options', 'nosniff')
      @Header('referrer-policy', 'no-referrer')
      page(): string {
        if (!withDashboard) throw new ForbiddenException('The dashboard is turned off (dashboard: false); the API is under /api.');
        return dashboardPage(auth);
      }
    }

    const activityToken = Symbol(`TransactionalMessageDashboardActivity:${path}`);

    @Controller(path)
    @UseGuards(...guards)
    class TransactionalMessageAdminController {
      constructor(
        @Inject(adminToken) private readonly admin: TransactionalMessageAdmin,
        @Inject(activityToken) private readonly activity: DashboardActivity,
      ) {}

      @Get('api/activity')
      activityOverTime() {
        return this.activity.activity();
      }

      @Get('api/summary')
      summary() {
        return http(() => this.admin.summary());
      }

      @Get('api/messages')
      async list(@Query() raw: Record<string, string | string[] | undefined>) {
        const limit = raw.limit === undefined ? undefined : Number(raw.limit);
        const after = typeof raw.after === 'string' ? raw.after : undefined;
        const page = await http(() => this.admin.list(toQuery(raw), { ...(limit !== undefined ? { limit } : {}), ...(after ? { after } : {}) }));
        return page;
      }

      @Get('api/messages/:id')
      async get(@Param('id') id: string) {
        const found = await http(() => this.admin.get(id));
        if (!found) throw new NotFoundException(`No message with id ${id}`);
        return { message: serialisable(found.message), checks: found.checks };
      }

      @Post('api/messages/:id/commit')
      @HttpCode(200)
      @UseGuards(JsonRequestGuard)
      async commit(@Param('id') id: string, @Req() request: { user?: unknown }) {
        await http(() => this.admin.commit(id, operatorOf(request)));
        return { id, done: 'committed' };
      }

      @Post('api/messages/:id/rollback')
      @HttpCode(200)
      @UseGuards(JsonRequestGuard)
      async rollback(@Param('id') id: string, @Req() request: { user?: unknown }) {
        await http(() => this.admin.rollback(id, operatorOf(request)));
        return { id, done: 'rolled back' };
      }

      @Post('api/messages/:id/replay')
      @HttpCode(200)
      @UseGuards(JsonRequestGuard)
      async replay(@Param('id') id: string, @Req() request: { user?: unknown }) {
        if (!(await http(() => this.admin.replay(id, operatorOf(request))))) throw new ConflictException(`Message ${id} is not DEAD: nothing to replay`);
        return { id, done: 'replayed' };
      }

      @Post('api/messages/:id/discard')
      @HttpCode(200)
      @UseGuards(JsonRequestGuard)
      async discard(@Param('id') id: string, @Req() request: { user?: unknown }) {
        if (!(await http(() => this.admin.discard(id, operatorOf(request))))) throw new ConflictException(`Message ${id} is not DEAD: nothing to discard`);
        return { id, done: 'discarded' };
      }

      @Post('api/replay-dead')
      @HttpCode(200)
      @UseGuards(JsonRequestGuard)
      async replayDead(@Body() body: Record<string, string> = {}, @Req() request: { user?: unknown } = {}) {
        const { status: _status, ...filter } = toQuery(body ?? {});
        return { replayed: await http(() => this.admin.replayDead(filter, operatorOf(request))) };
      }

      @Post('api/purge')
      @HttpCode(200)
      @UseGuards(JsonRequestGuard)
      async purge(@Body() body: Record<string, string> = {}, @Req() request: { user?: unknown } = {}) {
        const { status: _status, ...filter } = toQuery(body ?? {});
        return { purged: await http(() => this.admin.purge({ ...filter, status: body?.status as MessageStatus }, operatorOf(request))) };
      }
    }

    return {
      module: TransactionalMessageAdminModule,
      imports: options.imports ?? [],
      controllers: [TransactionalMessageDashboardController, TransactionalMessageAdminController],
      providers: [
        {
          provide: activityToken,
          inject: [adminToken],
          useFactory: (admin: TransactionalMessageAdmin) => new DashboardActivity(options.instance ?? DEFAULT_INSTANCE_NAME, admin),
        },
        ...(options.guard ? [] : [unguardedExposureCheck(path)]),
      ],
    };
  }
}
