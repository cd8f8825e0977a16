-- Argo CD health of a SharedServiceImport, from the conditions that shared-services-operator
-- writes: Healthy when Ready, Progressing while the source is still being resolved (or the
-- operator has not seen the latest spec yet), Degraded when a person has to act.
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
if ready.status == "True" then
  -- LastKnownAddresses is Ready too: the endpoints keep working while the central cluster
  -- cannot be reached, and the message says so.
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
-- Still being worked out: the remote cluster is being connected to, a hostname is being
-- resolved, or the load balancer has not given the remote Service its address yet.
local transient = {Connecting = true, Resolving = true, NoIngress = true}
if transient[ready.reason] or ready.status == "Unknown" then
  hs.status = "Progressing"
else
  -- Conflict, NamespaceDenied, RemoteNamespaceDenied, InvalidSpec, RemoteServiceNotFound,
  -- RemoteUnavailable without a last known address, AddressNotAllowed and SourceNotAllowed
  -- (the platform team's address policy refused the source or an address), and the like.
  hs.status = "Degraded"
end
hs.message = ready.reason .. ": " .. (ready.message or "")
return hs
