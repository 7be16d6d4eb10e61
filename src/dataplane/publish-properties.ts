// The MQTT 5 properties of a publish that travel with it to the cloud: user
// properties and content type, taken from a parsed packet (mqtt-packet's shape,
// which aedes and mqtt.js share).

/** What a message carries of its publish's properties; both absent for MQTT 3.1.1. */
export interface PublishProperties {
  /** In the order they came, a name repeated once per value. */
  userProperties?: [string, string][];
  contentType?: string;
}

/** The user properties and content type of a parsed PUBLISH's properties, when it has any. */
export function publishPropertiesOf(
  properties:
    { userProperties?: Record<string, string | string[]>; contentType?: string } | undefined,
): PublishProperties {
  const out: PublishProperties = {};
  if (properties === undefined) return out;
  const user = properties.userProperties;
  if (user !== undefined) {
    const pairs: [string, string][] = [];
    for (const name in user) {
      const value = user[name];
      if (Array.isArray(value)) for (const v of value) pairs.push([name, v]);
      else if (typeof value === 'string') pairs.push([name, value]);
    }
    if (pairs.length > 0) out.userProperties = pairs;
  }
  if (typeof properties.contentType === 'string') out.contentType = properties.contentType;
  return out;
}
