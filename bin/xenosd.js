#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// xenosd: the Xenos coordinator (see src/daemon/main.ts).
import '../src/daemon/main.ts';
