-- Argo CD health of a SharedServiceCatalog, from the status shared-services-operator writes:
-- Healthy when every selected Service is imported and ready, Progressing while imports are
-- being made or made ready (or the operator has not seen the latest spec yet), Degraded when
-- a person has to act: a name taken by something the catalog did not make, a RemoteCluster
-- missing or refusing, an invalid spec.
local hs = {status = "Progressing", message = "waiting for shared-services-operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "waiting for shared-services-operator to see generation " .. generation
  return hs
end
local ready = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready == nil then
  return hs
end
local counts = (obj.status.imported or 0) .. " imported, " .. (obj.status.pending or 0) ..
  " pending, " .. (obj.status.conflicts or 0) .. " in conflict"
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = counts
  return hs
end
local transient = {Pending = true, Connecting = true}
if transient[ready.reason] or ready.status == "Unknown" then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = ready.reason .. " (" .. counts .. "): " .. (ready.message or "")
return hs
