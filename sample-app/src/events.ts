/** The topic the order service publishes when an order is paid (SHOP_ORDER_PAID_TOPIC overrides it, for tests). */
export const ORDER_PAID = process.env.SHOP_ORDER_PAID_TOPIC ?? 'shop.order.paid';

/** The body of an order-paid message. */
export interface OrderPaid {
  orderId: string;
  userId: string;
  amountCents: number;
  items: Array<{ sku: string; quantity: number }>;
}
