"""LTI 1.3 Advantage for learnhub: launches from an LMS, roster sync (NRPS), grade passback (AGS),
deep linking. Engines here know nothing of the web; the hub's authenticator (:mod:`.auth`) and the
courses service's handlers are thin layers over them. See docs/lti.md."""
