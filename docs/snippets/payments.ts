// An example payment provider the documentation's TypeScript snippets import ('./payments');
// compiled with them by scripts/check-docs.mjs. Not part of the package.
import { Injectable } from '@nestjs/common';

export interface PayOrderDto {
  orderId: string;
  amount: number;
}

export interface OrderPaid {
  orderId: string;
  amount: number;
}

export interface Payment {
  paid: boolean;
  pending: boolean;
  declined: boolean;
}

@Injectable()
export class PaymentGateway {
  async charge(request: PayOrderDto & { idempotencyKey: string }): Promise<Payment> {
    return { paid: request.amount > 0, pending: false, declined: request.amount <= 0 };
  }

  async status(idempotencyKey: string): Promise<Payment> {
    return { paid: idempotencyKey.length > 0, pending: false, declined: false };
  }
}
