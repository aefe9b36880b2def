namespace EdgeMta.Spool;
