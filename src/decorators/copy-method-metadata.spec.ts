import 'reflect-metadata';
import { copyMethodMetadata } from './copy-method-metadata.js';

describe('copyMethodMetadata', () => {
  it('copies every metadata entry and the name', () => {
    function handle() {}
    Reflect.defineMetadata('microservices:pattern', ['order.paid'], handle);
    Reflect.defineMetadata('guards', ['AuthGuard'], handle);
    const wrapper = function () {};
    copyMethodMetadata(handle, wrapper);
    expect(wrapper.name).toBe('handle');
    expect(Reflect.getMetadata('microservices:pattern', wrapper)).toEqual(['order.paid']);
    expect(Reflect.getMetadata('guards', wrapper)).toEqual(['AuthGuard']);
  });
});
