"""What the SDK adds to a call: client CPU and wall time per GetCredential, through the SDK and
through the bare generated stub, against a running vault.

Usage: CREDVAULT_TARGET=localhost:50051 CREDVAULT_TOKEN=... python bench/get_overhead.py
"""

import os
import time

import grpc

import credvault
from credvault._gen.credentials.v1 import credentials_service_pb2 as pb
from credvault._gen.credentials.v1 import credentials_service_pb2_grpc as service_grpc

target = os.environ.get("CREDVAULT_TARGET", "localhost:50051")
token = os.environ["CREDVAULT_TOKEN"]
calls = int(os.environ.get("CALLS", "3000"))
client = credvault.Client(target, token=token)
first = next(iter(client.credentials.list(page_size=1)))
stub = service_grpc.CredentialsServiceStub(grpc.insecure_channel(target))
metadata = (("authorization", f"Bearer {token}"),)


def measure(call):
    for _ in range(200):
        call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    return (time.process_time() - cpu) / calls * 1e6, (time.perf_counter() - wall) / calls * 1e6


for run in range(1, 4):
    raw = measure(lambda: stub.GetCredential(pb.GetCredentialRequest(id=first.id), metadata=metadata, timeout=30))
    sdk = measure(lambda: client.credentials.get(first.id))
    print(f"run {run}: client CPU per get {raw[0]:.0f} us bare, {sdk[0]:.0f} us credvault; "
          f"wall {raw[1]:.0f} us bare, {sdk[1]:.0f} us credvault")
