#!/usr/bin/env bash
# Regenerates protocol/prompb/gen/*_pb.ts from the upstream .proto files beside it
# (protocol/prompb/SOURCE.md). The generators come through npx at generation time only,
# so the project keeps one runtime dependency (@bufbuild/protobuf) and no codegen tools.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/proto"
# gogoproto options only steer Go code generation; they change nothing on the wire.
for f in types remote; do
  sed -e '/import "gogoproto\/gogo.proto";/d' -e 's/ *\[(gogoproto\.[^]]*\]//g' "$root/protocol/prompb/$f.proto" > "$work/proto/$f.proto"
done
cat > "$work/buf.gen.yaml" <<'YAML'
version: v2
plugins:
  - local: protoc-gen-es
    out: gen
    opt: [target=ts, import_extension=js]
YAML
cd "$work"
npx -y -p @bufbuild/buf@1.75.0 -p @bufbuild/protoc-gen-es@2.13.0 buf generate proto
rm -rf "$root/protocol/prompb/gen"
mkdir -p "$root/protocol/prompb/gen"
cp gen/*_pb.ts "$root/protocol/prompb/gen/"
