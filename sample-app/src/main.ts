import { startShop } from './bootstrap.js';

const shop = await startShop();
console.log(`Shop listening on ${shop.url} (POST /orders, POST /orders/:id/pay, GET /orders/:id, /carts, /credit, /shipments)`);
console.log(`Operations: dashboard ${shop.url}/ops/messages, metrics ${shop.url}/metrics, health ${shop.url}/health`);
