"""Loads an OCEL 2.0 JSON log with pm4py and prints, as JSON, its event and
object counts by type and the directly-follows graph pm4py discovers for
the prospects (the log flattened on the `prospect` object type)."""
import json
import sys

import pm4py

ocel = pm4py.read_ocel2_json(sys.argv[1])
flat = pm4py.ocel_flattening(ocel, "prospect")
dfg, start, end = pm4py.discover_dfg(flat)
print(json.dumps({
    "events": len(ocel.events),
    "objects": len(ocel.objects),
    "event_types": ocel.events["ocel:activity"].value_counts().to_dict(),
    "object_types": ocel.objects["ocel:type"].value_counts().to_dict(),
    "relations": len(ocel.relations),
    "dfg": [[a, b, n] for (a, b), n in sorted(dfg.items())],
    "start": dict(start),
}))
