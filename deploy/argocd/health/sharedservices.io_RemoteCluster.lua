-- Argo CD health of a RemoteCluster: Healthy when the operator is connected to it,
-- Progressing while it connects, Degraded when its credentials or its address are wrong.
local hs = {status = "Progressing", message = "waiting for shared-services-operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Connected" then
    hs.message = condition.reason .. ": " .. (condition.message or "")
    local observed = condition.observedGeneration
    if generation ~= nil and observed ~= nil and observed < generation then
      hs.status = "Progressing"
      hs.message = "waiting for shared-services-operator to see generation " .. generation
    elseif condition.status == "True" then
      hs.status = "Healthy"
      hs.message = condition.message
    elseif condition.reason == "Connecting" or condition.status == "Unknown" then
      hs.status = "Progressing"
    else
      -- Unauthorized, Forbidden, TLSUntrusted, SecretNotFound, InsecureKubeconfig,
      -- KubeconfigInvalid, Unreachable, ServerNotAllowed, InvalidSpec, and those of
      -- vsphereSignIn: SignInRejected, SignInCredentialsInvalid, SignInUnreachable,
      -- SignInFailed.
      hs.status = "Degraded"
    end
  end
end
return hs
