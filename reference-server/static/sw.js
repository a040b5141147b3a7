// The platform's service worker. The reference registers none: a chat that resumed only
// through a worker would stay stuck after a hard reload, which loads the page without its
// worker in control. The defect `trusts-its-service-worker` registers this file, edited.
