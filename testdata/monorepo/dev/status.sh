#!/usr/bin/env bash
echo "STABLE_VERSION 1.2.3"
echo "BUILD_COMMIT deadbeef"
