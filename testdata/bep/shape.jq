# One BEP event → its shape (see record-golden.sh): configuration ids → "CONFIG"; the payload
# (every field but id, children, lastMessage) reduced to its keys, arrays to one element
# (objects: the union of their elements' keys), values to their JSON type. tests/it/progress.rs applies the same reduction in Rust.
def ids: walk(if type == "object" and has("configuration") and (.configuration | type) == "object" and (.configuration | has("id"))
              then .configuration.id = "CONFIG" else . end);
def skel: if type == "object" then with_entries(.value |= skel)
          elif type == "array" then (if length == 0 then []
                                     elif (.[0] | type) == "object" then [reduce (.[] | skel) as $x ({}; . * $x)]
                                     else [.[0] | skel] end)
          else type end;
{id: (.id | ids | if has("configuration") then .configuration.id = "CONFIG" else . end),
 children: ((.children // []) | map(ids | if has("configuration") then .configuration.id = "CONFIG" else . end)),
 payload: (del(.id, .children, .lastMessage) | skel),
 last: (.lastMessage // false)}
