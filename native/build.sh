#!/usr/bin/env bash
# Placeholder: compiles native into target/liblorakit.so (filled in by the kernels work).
echo "native: nothing to build yet"
