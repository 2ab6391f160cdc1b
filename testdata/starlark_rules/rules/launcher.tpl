#!/bin/bash
# Generated launcher for {NAME}.
set -euo pipefail
echo "{GREETING} from {NAME}"
cat "{DATA}"
