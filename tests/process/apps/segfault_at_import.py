"""An app module whose import crashes the process (a broken C extension, say): SIGSEGV, no core."""

import os
import resource
import signal

# A crash loop must not fill the disk with core files while the test counts forks.
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
os.kill(os.getpid(), signal.SIGSEGV)
