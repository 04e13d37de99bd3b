import { DataSource } from 'typeorm';

declare const EXPECTED_TYPEORM: string;

// The integration tests run twice, on TypeORM 1.x and 0.3.x (jest.config.js): this says which one
// a run really used, so a mapping that silently stopped working cannot pass for coverage of 0.3.
describe('the TypeORM under test', () => {
  it(`is ${EXPECTED_TYPEORM}x`, async () => {
    const { default: manifest } = await import('typeorm/package.json', { with: { type: 'json' } });
    expect(manifest.version.startsWith(EXPECTED_TYPEORM) ? EXPECTED_TYPEORM : manifest.version).toBe(EXPECTED_TYPEORM);
    expect(typeof DataSource).toBe('function');
  });
});
