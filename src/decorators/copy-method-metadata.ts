/**
 * @internal Copies every reflect-metadata entry and the name of `from` onto `to`, so that other
 * decorators on the same method (`@EventPattern`, guards, pipes, Swagger) still find theirs.
 */
export function copyMethodMetadata(from: Function, to: Function): void {
  for (const key of Reflect.getOwnMetadataKeys(from)) {
    Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, from), to);
  }
  Object.defineProperty(to, 'name', { value: from.name, configurable: true });
}
