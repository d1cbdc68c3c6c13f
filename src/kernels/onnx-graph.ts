// Writes the few ONNX ModelProto messages the GEMM kernel needs, in protobuf wire format.
// A single-node graph is small enough that a hand-written encoder beats a protobuf dependency.
// Field numbers are those of onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, ...).

const utf8 = new TextEncoder();

function varint(value: number): number[] {
  const out: number[] = [];
  let n = value;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;

function key(field: number, wire: number): number[] {
  return varint(field * 8 + wire);
}

function intField(field: number, value: number): number[] {
  return [...key(field, WIRE_VARINT), ...varint(value)];
}

function bytesField(field: number, payload: number[]): number[] {
  return [...key(field, WIRE_BYTES), ...varint(payload.length), ...payload];
}

function stringField(field: number, text: string): number[] {
  return bytesField(field, [...utf8.encode(text)]);
}

/** A dimension is a fixed size or a symbolic name (dynamic). */
export type Dim = number | string;

const ELEM_FLOAT = 1;
const ATTR_INT = 2;

function tensorValueInfo(field: number, name: string, shape: Dim[]): number[] {
  const dims = shape.flatMap((d) =>
    bytesField(1, typeof d === 'number' ? intField(1, d) : stringField(2, d)),
  );
  const tensorType = [...intField(1, ELEM_FLOAT), ...bytesField(2, dims)];
  const typeProto = bytesField(1, tensorType);
  return bytesField(field, [...stringField(1, name), ...bytesField(2, typeProto)]);
}

export interface NodeSpec {
  op: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  intAttributes?: Record<string, number>;
}

export interface GraphSpec {
  node: NodeSpec;
  inputs: { name: string; shape: Dim[] }[];
  outputs: { name: string; shape: Dim[] }[];
}

/** Serialises a one-node float32 graph as an ONNX model (IR 8, opset 17 + com.microsoft 1). */
export function singleNodeModel(spec: GraphSpec): Uint8Array {
  const { node } = spec;
  const attributes = Object.entries(node.intAttributes ?? {}).flatMap(([name, value]) =>
    bytesField(5, [...stringField(1, name), ...intField(3, value), ...intField(20, ATTR_INT)]),
  );
  const nodeProto = [
    ...node.inputs.flatMap((name) => stringField(1, name)),
    ...node.outputs.flatMap((name) => stringField(2, name)),
    ...stringField(4, node.op),
    ...attributes,
    ...(node.domain ? stringField(7, node.domain) : []),
  ];
  const graph = [
    ...bytesField(1, nodeProto),
    ...stringField(2, node.op),
    ...spec.inputs.flatMap((v) => tensorValueInfo(11, v.name, v.shape)),
    ...spec.outputs.flatMap((v) => tensorValueInfo(12, v.name, v.shape)),
  ];
  const opset = (domain: string, version: number) =>
    bytesField(8, [...stringField(1, domain), ...intField(2, version)]);
  return new Uint8Array([
    ...intField(1, 8),
    ...opset('', 17),
    ...opset('com.microsoft', 1),
    ...bytesField(7, graph),
  ]);
}
