import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';

/**
 * The sample's guard for the admin dashboard: requests from this machine only. A real
 * application puts its own authentication and authorization here.
 */
@Injectable()
export class LoopbackGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const address = context.switchToHttp().getRequest<{ socket?: { remoteAddress?: string } }>().socket?.remoteAddress ?? '';
    return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
  }
}
