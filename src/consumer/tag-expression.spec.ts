import { parseTagExpression } from './tag-expression.js';

describe('parseTagExpression (RocketMQ subscription expressions)', () => {
  it('* and the empty expression match everything, tagged or not', () => {
    for (const source of ['*', '', '  * ']) {
      const expression = parseTagExpression(source, 'test');
      expect(expression.matches([])).toBe(true);
      expect(expression.matches(['paid'])).toBe(true);
    }
  });

  it('tagA || tagB matches a message carrying any of them', () => {
    const expression = parseTagExpression('paid || refunded', 'test');
    expect(expression.matches(['paid'])).toBe(true);
    expect(expression.matches(['vip', 'refunded'])).toBe(true);
    expect(expression.matches(['shipped'])).toBe(false);
    expect(expression.matches([])).toBe(false);
    expect(parseTagExpression('paid||refunded', 'test').matches(['refunded'])).toBe(true);
  });

  it.each(['paid ||', '|| paid', 'paid | refunded', 'two words', 'a,b'])('refuses %p naming it', (source) => {
    expect(() => parseTagExpression(source, '@Inbox on Logistics.onPaid')).toThrow(
      `@Inbox on Logistics.onPaid: invalid tag expression ${JSON.stringify(source)}`,
    );
  });
});
