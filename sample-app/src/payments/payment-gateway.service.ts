import { BadRequestException, Injectable } from '@nestjs/common';

export type PaymentResult = 'paid' | 'pending' | 'declined';

/**
 * A simulated payment provider. The card number decides: ending in 4242 pays at once, 0000 is
 * pending (the provider settles it after `pendingChecks` status queries), 9999 is declined.
 * Charges are idempotent by key, like a real provider's.
 */
@Injectable()
export class PaymentGateway {
  pendingChecks = 1;
  private readonly charges = new Map<string, { result: PaymentResult; queries: number }>();

  charge(idempotencyKey: string, amountCents: number, card: string): PaymentResult {
    if (!/^\d{12,19}$/.test(card)) throw new BadRequestException(`card ${JSON.stringify(card)} is not a card number (12-19 digits)`);
    if (!Number.isInteger(amountCents) || amountCents <= 0) throw new BadRequestException(`amount ${amountCents} must be a positive number of cents`);
    const existing = this.charges.get(idempotencyKey);
    if (existing) return existing.result;
    const result: PaymentResult = card.endsWith('9999') ? 'declined' : card.endsWith('0000') ? 'pending' : 'paid';
    this.charges.set(idempotencyKey, { result, queries: 0 });
    return result;
  }

  /** Charges the provider has made (a repeated idempotency key makes none). */
  get chargesMade(): number {
    return this.charges.size;
  }

  /** What the provider now says about a charge; a pending charge settles after a few queries. */
  status(idempotencyKey: string): PaymentResult | 'unknown' {
    const charge = this.charges.get(idempotencyKey);
    if (!charge) return 'unknown';
    if (charge.result === 'pending' && ++charge.queries > this.pendingChecks) charge.result = 'paid';
    return charge.result;
  }
}
