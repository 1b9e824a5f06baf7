#!/usr/bin/env bash
# Developers: regenerate the initial migration (0001) from the layer declarations after changing a layer,
# while the project has no released schema. Uses a throwaway managed PostGIS, never the user's.
set -euo pipefail
cd "$(dirname "$0")/.."
export FIRELANE_HOME=$(mktemp -d /tmp/firelane-regen-XXXX)
unset FIRELANE_DATABASE_URL
PY=${PY:-.venv/bin/python}
"$PY" - <<'PYEOF'
import re
from pathlib import Path
from gis import migrate, pgcluster
versions = migrate.MIGRATIONS / "versions"
for f in versions.glob("*.py"):
    f.unlink()
pgcluster.start()
migrate.revision("Initial schema: layers, audit log, check runs, users")
[f] = list(versions.glob("*.py"))
s = f.read_text()
s = re.sub(r"revision = '[0-9a-f]+'", "revision = '0001'", s)
s = re.sub(r"Revision ID: [0-9a-f]+", "Revision ID: 0001", s)
s = s.replace("Revises: \n", "Revises:\n")
s = s.replace("from alembic import op\n", "from alembic import op\n\nfrom gis.audit import all_triggers_sql, drop_all_sql\n", 1)
s = s.replace("from gis.audit import all_triggers_sql, drop_all_sql\n",
              "from gis.audit import all_triggers_sql, drop_all_sql\nfrom gis.campaign.events import drop_events_sql, events_sql\n", 1)
s = s.replace("    # ### end Alembic commands ###\n\n\ndef downgrade",
              "    # ### end Alembic commands ###\n    op.execute(all_triggers_sql())\n    op.execute(events_sql())\n\n\ndef downgrade", 1)
s = s.replace("def downgrade() -> None:\n", "def downgrade() -> None:\n    op.execute(drop_events_sql())\n    op.execute(drop_all_sql())\n", 1)
# jurisdiction (gis/jurisdiction.py): the compound overlap trigger, roles' grants, row-level security
s = s.replace("drop_events_sql, events_sql\n",
              "drop_events_sql, events_sql\nfrom gis.jurisdiction import drop_jurisdiction_sql, jurisdiction_sql\n", 1)
s = s.replace("    op.execute(events_sql())\n", "    op.execute(events_sql())\n    op.execute(jurisdiction_sql())\n", 1)
s = s.replace("    op.execute(drop_events_sql())\n", "    op.execute(drop_jurisdiction_sql())\n    op.execute(drop_events_sql())\n", 1)
f.unlink()
(versions / "0001_initial.py").write_text(s)
pgcluster.destroy()
print("regenerated", versions / "0001_initial.py")
PYEOF
rm -rf "$FIRELANE_HOME"
